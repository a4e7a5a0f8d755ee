//! The io_uring engine.

/// Whether this kernel lets us build the ring the engine needs.
pub(crate) fn probe() -> Result<(), String> {
    Err("the io_uring engine is not built yet".into())
}
