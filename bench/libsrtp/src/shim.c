/* A narrow C face of libsrtp2 for Veil's benches: one session per direction, AES-256-GCM with a
 * 16-byte tag (RFC 7714), so that Rust never has to mirror srtp_policy_t's layout. Every
 * function returns libsrtp's srtp_err_status_t (0 is success). */
#include <stdint.h>
#include <string.h>
#include <srtp2/srtp.h>

/* SRTP_AES_GCM_256_KEY_LEN_WSALT: 32 bytes of key, 12 of salt. */
#define VEIL_SRTP_KEY_LEN 44

int veil_srtp_init(void) { return (int)srtp_init(); }

int veil_srtp_key_len(void) { return SRTP_AES_GCM_256_KEY_LEN_WSALT; }

int veil_srtp_new(const uint8_t *key, size_t key_len, int inbound, void **out) {
  srtp_policy_t policy;
  srtp_t session = NULL;
  uint8_t key_copy[VEIL_SRTP_KEY_LEN];
  srtp_err_status_t status;
  if (key == NULL || out == NULL || key_len != VEIL_SRTP_KEY_LEN)
    return (int)srtp_err_status_bad_param;
  memcpy(key_copy, key, VEIL_SRTP_KEY_LEN);
  memset(&policy, 0, sizeof(policy));
  srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtp);
  srtp_crypto_policy_set_aes_gcm_256_16_auth(&policy.rtcp);
  policy.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
  policy.key = key_copy;
  policy.window_size = 1024;
  policy.allow_repeat_tx = 0;
  policy.next = NULL;
  status = srtp_create(&session, &policy);
  /* srtp_create expands the key into the session; the copy is not needed after it. */
  explicit_bzero(key_copy, sizeof(key_copy));
  if (status != srtp_err_status_ok)
    return (int)status;
  *out = session;
  return 0;
}

/* Protects the RTP packet buf[0..*len] in place; buf has room for cap bytes. */
int veil_srtp_protect(void *session, uint8_t *buf, int *len, size_t cap) {
  /* libsrtp writes up to SRTP_MAX_TRAILER_LEN after the packet and wants it 32-bit aligned. */
  if (session == NULL || buf == NULL || len == NULL || *len < 12 ||
      ((uintptr_t)buf & 3) != 0 || (size_t)*len + SRTP_MAX_TRAILER_LEN > cap)
    return (int)srtp_err_status_bad_param;
  return (int)srtp_protect((srtp_t)session, buf, len);
}

/* Verifies and decrypts the SRTP packet buf[0..*len] in place. */
int veil_srtp_unprotect(void *session, uint8_t *buf, int *len) {
  if (session == NULL || buf == NULL || len == NULL || *len < 12 ||
      ((uintptr_t)buf & 3) != 0)
    return (int)srtp_err_status_bad_param;
  return (int)srtp_unprotect((srtp_t)session, buf, len);
}

void veil_srtp_free(void *session) {
  if (session != NULL)
    srtp_dealloc((srtp_t)session);
}
