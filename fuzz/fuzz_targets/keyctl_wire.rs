//! Every keyctl decoder: whatever decodes is canonical, so encoding it again gives exactly the
//! input bytes. The first byte picks the decoder; the rest is its input.
#![no_main]
#![forbid(unsafe_code)]

use keyctl::wire::{
    Binding, Heartbeat, HeartbeatInput, KeyAnnouncement, LeaderChange, Leave, LinkPost,
    LockRequest, LockRequestBody, LplLink, Message, Meta, MkPayload, NonceBody, NoncePost, Rekey,
};
use libfuzzer_sys::fuzz_target;

macro_rules! canonical {
    ($ty:ty, $bytes:expr) => {
        if let Ok(value) = <$ty>::from_bytes($bytes) {
            assert_eq!(
                &value.to_bytes()[..],
                $bytes,
                concat!(stringify!($ty), ": decode then encode must give the input")
            );
        }
    };
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 16 {
        0 => canonical!(Message, bytes),
        1 => canonical!(Binding, bytes),
        2 => canonical!(KeyAnnouncement, bytes),
        3 => canonical!(HeartbeatInput, bytes),
        4 => canonical!(Heartbeat, bytes),
        5 => canonical!(LockRequestBody, bytes),
        6 => canonical!(LockRequest, bytes),
        7 => canonical!(Leave, bytes),
        8 => canonical!(LeaderChange, bytes),
        9 => canonical!(LplLink, bytes),
        10 => canonical!(LinkPost, bytes),
        11 => canonical!(NonceBody, bytes),
        12 => canonical!(NoncePost, bytes),
        13 => canonical!(Meta, bytes),
        14 => canonical!(Rekey, bytes),
        _ => canonical!(MkPayload, bytes),
    }
});
