//! The `xenstore` multi-call tool: `xenstore-read` ... `xenstore-watch` by
//! program name, or `xenstore <mode> ...`.

fn main() {
    std::process::exit(xenstore::cli::run(std::env::args_os().collect()));
}
