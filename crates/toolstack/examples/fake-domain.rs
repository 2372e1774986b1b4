//! The test-only stand-in for `rxen-domain` (`tests/support/fake_domain.rs`), as a
//! program of its own for the `xl create` benchmark (`tests/bench/xl-create.sh`).

#[path = "../tests/support/fake_domain.rs"]
mod fake_domain;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    fake_domain::main(&args)
}
