//! Frame decoding and every operation handler, from arbitrary bytes.
//!
//! The input is split into three byte streams (a dom0 tool, a guest of
//! domain 1, and a second dom0 tool) fed to the decoder in chunks; every
//! complete frame goes through `Store::handle`. Invariants: no panic, every
//! request gets exactly one reply, no reply exceeds the payload limit, and
//! the tree stays consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xen_abi::xs_wire::{XENSTORE_PAYLOAD_MAX, XS_WATCH_EVENT};
use xenstore::wire::FrameDecoder;
use xenstore::Store;

fuzz_target!(|data: &[u8]| {
    let mut s = Store::new();
    let tool = s.connect_dom0(true);
    let other = s.connect_dom0(false);
    s.handle(
        tool,
        &xenstore::Frame::new(8, 1, 0, b"1\x002\x003\x00".to_vec()),
    );
    let guest = s.connect_guest(1).expect("domain 1 introduced");
    s.take_output();
    let conns = [tool, guest, other];
    let mut decs = [FrameDecoder::new(), FrameDecoder::new(), FrameDecoder::new()];
    let mut dead = [false; 3];
    let mut i = 0;
    while i < data.len() {
        // One control byte: which connection, and how many bytes follow.
        let ctl = data[i];
        i += 1;
        let who = (ctl % 3) as usize;
        let n = ((ctl / 3) as usize * 7 + 1).min(data.len() - i);
        let chunk = &data[i..i + n];
        i += n;
        if dead[who] {
            continue;
        }
        let mut frames = Vec::new();
        if decs[who].feed_all(chunk, &mut frames).is_err() {
            dead[who] = true;
            s.disconnect(conns[who]);
            continue;
        }
        for f in frames {
            if !s.is_connected(conns[who]) {
                break;
            }
            s.handle(conns[who], &f);
            let out = s.take_output();
            let replies = out
                .iter()
                .filter(|(c, r)| *c == conns[who] && r.type_ != XS_WATCH_EVENT)
                .count();
            assert_eq!(replies, 1, "one reply per request");
            for (_, r) in &out {
                assert!(r.payload.len() <= XENSTORE_PAYLOAD_MAX);
            }
        }
    }
    s.check().expect("store consistent");
});
