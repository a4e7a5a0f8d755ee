//! The unsafe boundary in one place: the panic boundary every exported body runs in, and the
//! checked conversions from C pointers to Rust references, slices and owned boxes (the role of
//! rustls-ffi's `Castable`, `BoxCastPtr` and `try_ref_from_ptr!`).
//!
//! Exported functions call only these helpers on their pointer arguments, so each pointer rule
//! (NULL checks, NULL-with-zero-length slices, outputs written only on success) is written once.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::result::veil_result;

/// Runs an exported body: its `Err` becomes the returned code, and a panic becomes
/// [`veil_result::Panic`] instead of unwinding into C (which is undefined behaviour).
pub(crate) fn boundary(body: impl FnOnce() -> Result<(), veil_result>) -> veil_result {
    // AssertUnwindSafe: after a panic the caller is told the object is unreliable and should
    // be freed (veil_result::Panic), so no half-updated state is observed as valid.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => veil_result::Ok,
        Ok(Err(code)) => code,
        Err(_) => veil_result::Panic,
    }
}

/// [`boundary`] for functions with no result to return (the `_free` functions): a panic is
/// swallowed rather than unwound into C.
pub(crate) fn boundary_void(body: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(body));
}

/// A shared reference from a C pointer, or [`veil_result::NullPointer`].
///
/// # Safety
/// A non-NULL `ptr` must point to a live, properly aligned `T` that is not mutated for `'a`.
pub(crate) unsafe fn try_ref<'a, T>(ptr: *const T) -> Result<&'a T, veil_result> {
    // SAFETY: the caller's contract; `as_ref` handles NULL.
    unsafe { ptr.as_ref() }.ok_or(veil_result::NullPointer)
}

/// An exclusive reference from a C pointer, or [`veil_result::NullPointer`].
///
/// # Safety
/// A non-NULL `ptr` must point to a live, properly aligned `T` that nothing else accesses
/// for `'a`.
pub(crate) unsafe fn try_mut<'a, T>(ptr: *mut T) -> Result<&'a mut T, veil_result> {
    // SAFETY: the caller's contract; `as_mut` handles NULL.
    unsafe { ptr.as_mut() }.ok_or(veil_result::NullPointer)
}

/// An input buffer. NULL is accepted only with `len == 0` (an empty buffer).
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes not mutated for `'a`.
pub(crate) unsafe fn try_slice<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], veil_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(veil_result::NullPointer)
        };
    }
    // SAFETY: non-NULL, and the caller guarantees `len` readable bytes.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// An output or in-place buffer. NULL is accepted only with `len == 0`.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` writable bytes that nothing else accesses for `'a`.
pub(crate) unsafe fn try_slice_mut<'a>(
    ptr: *mut u8,
    len: usize,
) -> Result<&'a mut [u8], veil_result> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(veil_result::NullPointer)
        };
    }
    // SAFETY: non-NULL, and the caller guarantees `len` writable bytes used by nobody else.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Checks that an out-parameter is not NULL, before any work is done, so a call that fails
/// on it has no effect.
pub(crate) fn check_out<T>(ptr: *mut T) -> Result<(), veil_result> {
    if ptr.is_null() {
        Err(veil_result::NullPointer)
    } else {
        Ok(())
    }
}

/// Writes an out-parameter without reading (or dropping) what the C caller left there.
///
/// # Safety
/// `ptr` must be non-NULL (see [`check_out`]), aligned and valid for writing a `T`.
pub(crate) unsafe fn write_out<T>(ptr: *mut T, value: T) {
    // SAFETY: the caller's contract.
    unsafe { ptr.write(value) }
}

/// Moves `value` to the heap and hands ownership to C through `out`.
///
/// # Safety
/// As [`write_out`].
pub(crate) unsafe fn give<T>(out: *mut *mut T, value: T) {
    // SAFETY: the caller's contract.
    unsafe { write_out(out, Box::into_raw(Box::new(value))) }
}

/// Takes back and drops an object handed out by [`give`]; NULL is a no-op.
///
/// # Safety
/// A non-NULL `ptr` must come from [`give`] for the same `T` and not have been freed.
pub(crate) unsafe fn free<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: the caller's contract: `ptr` is a live `Box<T>` that C handed back.
        drop(unsafe { Box::from_raw(ptr) });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use super::*;

    #[test]
    fn a_panic_becomes_veil_result_panic() {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let code = boundary(|| panic!("inside the boundary"));
        std::panic::set_hook(previous);
        assert_eq!(code, veil_result::Panic);
    }

    #[test]
    fn errors_pass_through_and_ok_is_zero() {
        assert_eq!(boundary(|| Ok(())) as u32, 0);
        assert_eq!(boundary(|| Err(veil_result::Replay)), veil_result::Replay);
    }

    #[test]
    fn null_is_an_empty_slice_only_with_length_zero() {
        // SAFETY: NULL pointers; the helpers never dereference them.
        unsafe {
            assert_eq!(try_slice(core::ptr::null(), 0), Ok(&[][..]));
            assert_eq!(
                try_slice(core::ptr::null(), 1),
                Err(veil_result::NullPointer)
            );
            assert!(try_slice_mut(core::ptr::null_mut(), 3).is_err());
            assert!(try_ref::<u8>(core::ptr::null()).is_err());
        }
    }
}
