//! libveil: the C ABI of Veil.
#![deny(unsafe_op_in_unsafe_fn)]
