//! SFrame frame mode (RFC 9605): `veil_sframe_context` over `dataplane::sframe::Context`.

use dataplane::sframe::{CipherSuite, Context, Error, Header};

use crate::ffi::{boundary, boundary_void, check_out, free, give, try_mut, try_ref, try_slice};
use crate::ffi::{try_slice_mut, write_out};
use crate::result::veil_result;

/// An SFrame context (RFC 9605 Appendix A): one cipher suite and the send and receive keys
/// installed under it by KID. Each send key has its own counter, starting at 0.
///
/// Thread safety: a context may be moved to another thread, but must be used by one thread at
/// a time (calls that encrypt advance counters). Use one context per thread, or lock.
#[allow(non_camel_case_types)]
pub struct veil_sframe_context {
    inner: Context,
}

/// Creates an SFrame context for the cipher suite `suite` (its IANA value, RFC 9605 4.5:
/// 0x0001-0x0005, and 0x0006-0x0008 of the registry; 0x0005 is Veil's default).
///
/// On success `*out` owns a context that the caller frees with `veil_sframe_context_free`.
///
/// # Safety
/// `out` must be NULL or valid for writing a pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_context_new(
    suite: u16,
    out: *mut *mut veil_sframe_context,
) -> veil_result {
    boundary(|| {
        check_out(out)?;
        let suite = CipherSuite::try_from(suite)?;
        // SAFETY: `out` is non-NULL and the caller's contract makes it writable.
        unsafe {
            give(
                out,
                veil_sframe_context {
                    inner: Context::new(suite),
                },
            );
        }
        Ok(())
    })
}

/// Frees a context and erases every key in it. NULL is a no-op.
///
/// # Safety
/// `ctx` must be NULL or a context from `veil_sframe_context_new` not yet freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_context_free(ctx: *mut veil_sframe_context) {
    // SAFETY: the caller's contract.
    boundary_void(|| unsafe { free(ctx) });
}

/// Which direction a key is added for.
enum Direction {
    Send,
    Recv,
}

/// # Safety
/// As the exported `add` functions.
unsafe fn add_key(
    ctx: *mut veil_sframe_context,
    kid: u64,
    base_key: *const u8,
    base_key_len: usize,
    direction: Direction,
) -> veil_result {
    boundary(|| {
        // SAFETY: the exported function's contract.
        let ctx = unsafe { try_mut(ctx) }?;
        // SAFETY: the exported function's contract.
        let base_key = unsafe { try_slice(base_key, base_key_len) }?;
        if base_key.is_empty() {
            return Err(veil_result::InvalidArgument);
        }
        match direction {
            Direction::Send => ctx.inner.add_send_key(kid, base_key)?,
            Direction::Recv => ctx.inner.add_recv_key(kid, base_key)?,
        }
        Ok(())
    })
}

/// Installs a send key for `kid`, derived from `base_key` (RFC 9605 4.4.2); its counter
/// starts at 0. `VEIL_RESULT_DUPLICATE_KEY` if a key is already installed under `kid`.
/// Base keys must be fresh: re-adding one after removing it would reuse counters.
///
/// # Safety
/// `ctx` must be NULL or a live context; `base_key` must be NULL or point to
/// `base_key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_add_send_key(
    ctx: *mut veil_sframe_context,
    kid: u64,
    base_key: *const u8,
    base_key_len: usize,
) -> veil_result {
    // SAFETY: the same contract.
    unsafe { add_key(ctx, kid, base_key, base_key_len, Direction::Send) }
}

/// Installs a receive key for `kid`, derived from `base_key` (RFC 9605 4.4.2).
///
/// # Safety
/// As `veil_sframe_add_send_key`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_add_recv_key(
    ctx: *mut veil_sframe_context,
    kid: u64,
    base_key: *const u8,
    base_key_len: usize,
) -> veil_result {
    // SAFETY: the same contract.
    unsafe { add_key(ctx, kid, base_key, base_key_len, Direction::Recv) }
}

/// Removes the key under `kid` and erases it. `VEIL_RESULT_UNKNOWN_KEY` if there is none.
///
/// # Safety
/// `ctx` must be NULL or a live context.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_remove_key(
    ctx: *mut veil_sframe_context,
    kid: u64,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let ctx = unsafe { try_mut(ctx) }?;
        Ok(ctx.inner.remove_key(kid)?)
    })
}

/// The SFrame header length the next frame sealed under `kid` will carry, without spending
/// a counter. The context checks the headroom before anything else and reports the header
/// length it needed, so asking with no headroom is an exact, side-effect-free query.
fn next_header_len(
    ctx: &mut Context,
    kid: u64,
    plaintext_len: usize,
) -> Result<usize, veil_result> {
    match ctx.encrypt_in_place(kid, &[], &mut [], 0, plaintext_len) {
        Err(Error::HeadroomTooSmall { needed, .. }) => Ok(needed),
        Err(e) => Err(e.into()),
        // A header is at least one byte, so zero headroom cannot succeed.
        Ok(_) => Err(veil_result::Unexpected),
    }
}

fn encrypt_size(ctx: &mut Context, kid: u64, plaintext_len: usize) -> Result<usize, veil_result> {
    let header_len = next_header_len(ctx, kid, plaintext_len)?;
    header_len
        .checked_add(plaintext_len)
        .and_then(|n| n.checked_add(ctx.suite().tag_len()))
        .ok_or(veil_result::InvalidArgument)
}

/// Writes to `*out_size` the exact length of the next frame `veil_sframe_encrypt` would
/// produce under `kid` for a plaintext of `plaintext_len` bytes (header, ciphertext, tag).
/// Spends no counter.
///
/// # Safety
/// `ctx` must be NULL or a live context; `out_size` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_encrypt_size(
    ctx: *mut veil_sframe_context,
    kid: u64,
    plaintext_len: usize,
    out_size: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract.
        let ctx = unsafe { try_mut(ctx) }?;
        check_out(out_size)?;
        let size = encrypt_size(&mut ctx.inner, kid, plaintext_len)?;
        // SAFETY: checked non-NULL; the caller's contract makes it writable.
        unsafe { write_out(out_size, size) };
        Ok(())
    })
}

/// Encrypts one frame under the send key `kid` (RFC 9605 4.4.3, AAD = header || metadata)
/// into `out`: `header || ciphertext || tag`, `*out_len` bytes.
///
/// If `out_cap` is too small, returns `VEIL_RESULT_BUFFER_TOO_SMALL` with the needed size in
/// `*out_len`, spends no counter and leaves `out` untouched. `metadata` may be NULL when
/// `metadata_len` is 0. `plaintext` and `out` must not overlap.
///
/// # Safety
/// `ctx` must be NULL or a live context; each buffer NULL or valid for its length (`out` for
/// writing); `out_len` NULL or writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_sframe_encrypt(
    ctx: *mut veil_sframe_context,
    kid: u64,
    metadata: *const u8,
    metadata_len: usize,
    plaintext: *const u8,
    plaintext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (ctx, metadata, plaintext, out) = unsafe {
            (
                try_mut(ctx)?,
                try_slice(metadata, metadata_len)?,
                try_slice(plaintext, plaintext_len)?,
                try_slice_mut(out, out_cap)?,
            )
        };
        check_out(out_len)?;
        let header_len = next_header_len(&mut ctx.inner, kid, plaintext.len())?;
        let needed = encrypt_size(&mut ctx.inner, kid, plaintext.len())?;
        if out.len() < needed {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, needed) };
            return Err(veil_result::BufferTooSmall);
        }
        let out = &mut out[..needed];
        out[header_len..header_len + plaintext.len()].copy_from_slice(plaintext);
        let range = ctx
            .inner
            .encrypt_in_place(kid, metadata, out, header_len, plaintext.len())?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_len, range.end - range.start) };
        Ok(())
    })
}

/// The plaintext length of an SFrame ciphertext under this context's suite, from its header
/// and length alone: `ciphertext_len - header - tag`.
fn decrypt_size(ctx: &Context, ciphertext: &[u8]) -> Result<usize, veil_result> {
    let (_, header_len) = Header::parse(ciphertext)?;
    ciphertext
        .len()
        .checked_sub(header_len + ctx.suite().tag_len())
        .ok_or(veil_result::Malformed)
}

/// Writes to `*out_size` the plaintext length `veil_sframe_decrypt` would produce for this
/// ciphertext. `VEIL_RESULT_MALFORMED` if the header is invalid or the frame is shorter than
/// header and tag. Does not authenticate.
///
/// # Safety
/// `ctx` must be NULL or a live context; `ciphertext` NULL or readable for its length;
/// `out_size` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn veil_sframe_decrypt_size(
    ctx: *const veil_sframe_context,
    ciphertext: *const u8,
    ciphertext_len: usize,
    out_size: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (ctx, ciphertext) = unsafe { (try_ref(ctx)?, try_slice(ciphertext, ciphertext_len)?) };
        check_out(out_size)?;
        let size = decrypt_size(&ctx.inner, ciphertext)?;
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_size, size) };
        Ok(())
    })
}

/// Decrypts one SFrame frame with the receive key its header names, writing the plaintext to
/// `out` (`*out_len` bytes). `metadata` is the same the sender authenticated (may be NULL
/// when empty). On any failure `out` holds no plaintext: a frame that does not authenticate
/// is never released, even in part.
///
/// If `out_cap` is too small, returns `VEIL_RESULT_BUFFER_TOO_SMALL` with the needed size in
/// `*out_len`. `ciphertext` and `out` must not overlap.
///
/// # Safety
/// As `veil_sframe_encrypt`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn veil_sframe_decrypt(
    ctx: *mut veil_sframe_context,
    metadata: *const u8,
    metadata_len: usize,
    ciphertext: *const u8,
    ciphertext_len: usize,
    out: *mut u8,
    out_cap: usize,
    out_len: *mut usize,
) -> veil_result {
    boundary(|| {
        // SAFETY: the caller's contract, for each pointer.
        let (ctx, metadata, ciphertext, out) = unsafe {
            (
                try_mut(ctx)?,
                try_slice(metadata, metadata_len)?,
                try_slice(ciphertext, ciphertext_len)?,
                try_slice_mut(out, out_cap)?,
            )
        };
        check_out(out_len)?;
        let needed = decrypt_size(&ctx.inner, ciphertext)?;
        if out.len() < needed {
            // SAFETY: checked non-NULL; writable by contract.
            unsafe { write_out(out_len, needed) };
            return Err(veil_result::BufferTooSmall);
        }
        // Decrypt in a scratch copy, so `out` receives only authenticated plaintext.
        let mut scratch = zeroize::Zeroizing::new(ciphertext.to_vec());
        let range = ctx.inner.decrypt_in_place(metadata, &mut scratch)?;
        let plaintext = &scratch[range];
        out[..plaintext.len()].copy_from_slice(plaintext);
        // SAFETY: checked non-NULL; writable by contract.
        unsafe { write_out(out_len, plaintext.len()) };
        Ok(())
    })
}
