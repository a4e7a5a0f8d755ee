/* Misuse through the C API must return errors, never crash: NULL for every pointer, short
 * buffers, calls in the wrong state, unknown suites and modes. Out-parameters stay untouched
 * on failure (sentinels), except the needed size that BUFFER_TOO_SMALL reports. */
#include <string.h>

#include "check.h"

#define SENTINEL ((size_t)0x5a5a5a5a)
static const uint64_t NOW = 1700000000000ull;
static const uint8_t KEY[32] = {1, 2, 3};

static void version(void) {
  char expected[32];
  snprintf(expected, sizeof expected, "%d.%d.%d", VEIL_VERSION_MAJOR, VEIL_VERSION_MINOR, VEIL_VERSION_PATCH);
  CHECK(strcmp(veil_version(), expected) == 0);
  for (uint32_t r = 0; r <= 64; r++) CHECK(veil_result_str(r) != NULL);
  CHECK(strcmp(veil_result_str(1000), "unknown result code") == 0);
  CHECK(strcmp(veil_result_str(VEIL_RESULT_OK), "success") == 0);
}

static void sframe_misuse(void) {
  veil_sframe_context *ctx = NULL;
  CHECK_RESULT(veil_sframe_context_new(5, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_context_new(0, &ctx), VEIL_RESULT_UNSUPPORTED_SUITE);
  CHECK_RESULT(veil_sframe_context_new(9, &ctx), VEIL_RESULT_UNSUPPORTED_SUITE);
  CHECK_RESULT(veil_sframe_context_new(0xffff, &ctx), VEIL_RESULT_UNSUPPORTED_SUITE);
  CHECK(ctx == NULL);
  veil_sframe_context_free(NULL);

  CHECK_OK(veil_sframe_context_new(5, &ctx));
  CHECK_RESULT(veil_sframe_add_send_key(NULL, 1, KEY, 32), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_add_send_key(ctx, 1, NULL, 32), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_add_send_key(ctx, 1, KEY, 0), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(veil_sframe_add_recv_key(NULL, 1, KEY, 32), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_remove_key(NULL, 1), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_remove_key(ctx, 1), VEIL_RESULT_UNKNOWN_KEY);
  CHECK_OK(veil_sframe_add_send_key(ctx, 1, KEY, 32));
  CHECK_RESULT(veil_sframe_add_send_key(ctx, 1, KEY, 32), VEIL_RESULT_DUPLICATE_KEY);
  CHECK_RESULT(veil_sframe_add_recv_key(ctx, 1, KEY, 32), VEIL_RESULT_DUPLICATE_KEY);
  CHECK_OK(veil_sframe_add_recv_key(ctx, 2, KEY, 32));

  uint8_t pt[100] = {0}, out[200];
  size_t len = SENTINEL;
  CHECK_RESULT(veil_sframe_encrypt_size(NULL, 1, 10, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt_size(ctx, 1, 10, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt_size(ctx, 7, 10, &len), VEIL_RESULT_UNKNOWN_KEY);
  CHECK_RESULT(veil_sframe_encrypt_size(ctx, 2, 10, &len), VEIL_RESULT_WRONG_KEY_DIRECTION);
  CHECK(len == SENTINEL);
  CHECK_RESULT(veil_sframe_encrypt(NULL, 1, NULL, 0, pt, 10, out, sizeof out, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt(ctx, 1, NULL, 5, pt, 10, out, sizeof out, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt(ctx, 1, NULL, 0, NULL, 10, out, sizeof out, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt(ctx, 1, NULL, 0, pt, 10, NULL, sizeof out, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt(ctx, 1, NULL, 0, pt, 10, out, sizeof out, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_encrypt(ctx, 2, NULL, 0, pt, 10, out, sizeof out, &len), VEIL_RESULT_WRONG_KEY_DIRECTION);
  CHECK(len == SENTINEL);

  /* Short output: the needed size comes back, no counter is spent, the buffer is untouched. */
  size_t need = 0;
  CHECK_OK(veil_sframe_encrypt_size(ctx, 1, sizeof pt, &need));
  memset(out, 0xAA, sizeof out);
  CHECK_RESULT(veil_sframe_encrypt(ctx, 1, NULL, 0, pt, sizeof pt, out, need - 1, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == need);
  for (size_t i = 0; i < sizeof out; i++) CHECK(out[i] == 0xAA);
  CHECK_OK(veil_sframe_encrypt(ctx, 1, NULL, 0, pt, sizeof pt, out, need, &len));
  CHECK(len == need && out[0] == 0x10); /* KID 1, CTR 0: the first counter was not lost */

  size_t plain = SENTINEL;
  CHECK_RESULT(veil_sframe_decrypt_size(NULL, out, len, &plain), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_decrypt_size(ctx, NULL, len, &plain), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_sframe_decrypt_size(ctx, out, 0, &plain), VEIL_RESULT_MALFORMED);
  CHECK_RESULT(veil_sframe_decrypt_size(ctx, out, 5, &plain), VEIL_RESULT_MALFORMED);
  CHECK(plain == SENTINEL);
  uint8_t back[200];
  CHECK_RESULT(veil_sframe_decrypt(ctx, NULL, 0, out, len, back, sizeof back, &plain), VEIL_RESULT_WRONG_KEY_DIRECTION);
  CHECK_RESULT(veil_sframe_decrypt(ctx, NULL, 0, out, len, back, 10, &plain), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(plain == sizeof pt);
  CHECK_RESULT(veil_sframe_decrypt(ctx, NULL, 0, out, len, NULL, sizeof back, &plain), VEIL_RESULT_NULL_POINTER);
  veil_sframe_context_free(ctx);
}

static veil_protector *protector(void) {
  veil_protector *p = NULL;
  CHECK_OK(veil_protector_new(VEIL_MODE_DATAGRAM, 5, (const uint8_t *)"m", 1, (const uint8_t *)"u", 1, 1, &p));
  return p;
}

static void protector_misuse(void) {
  veil_protector *p = NULL;
  CHECK_RESULT(veil_protector_new(VEIL_MODE_DATAGRAM, 5, NULL, 1, (const uint8_t *)"u", 1, 1, &p), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_new(VEIL_MODE_DATAGRAM, 5, (const uint8_t *)"m", 1, (const uint8_t *)"u", 1, 1, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_new(7, 5, (const uint8_t *)"m", 1, (const uint8_t *)"u", 1, 1, &p), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(veil_protector_new(VEIL_MODE_RTP, 42, (const uint8_t *)"m", 1, (const uint8_t *)"u", 1, 1, &p), VEIL_RESULT_UNSUPPORTED_SUITE);
  static uint8_t long_id[VEIL_MAX_ID_LEN + 1];
  CHECK_RESULT(veil_protector_new(VEIL_MODE_RTP, 5, long_id, sizeof long_id, (const uint8_t *)"u", 1, 1, &p), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK(p == NULL);
  veil_protector_free(NULL);
  CHECK_RESULT(veil_protector_new_worker(NULL, &p), VEIL_RESULT_NULL_POINTER);

  p = protector();
  uint8_t buf[256] = {0};
  size_t off = SENTINEL, len = SENTINEL;
  /* No key yet: nothing to send with, nothing to open with. */
  CHECK_RESULT(veil_protector_protect(p, NOW, 0, buf, sizeof buf, VEIL_PROTECT_HEADROOM, 10, &off, &len), VEIL_RESULT_NO_SEND_KEY);
  CHECK_RESULT(veil_protector_unprotect(p, NOW, buf, 40, &off, &len), VEIL_RESULT_UNKNOWN_KEY);
  CHECK_RESULT(veil_protector_unprotect(p, NOW, buf, 3, &off, &len), VEIL_RESULT_MALFORMED);
  CHECK(off == SENTINEL && len == SENTINEL);

  const veil_roster_entry roster[] = {{1, (const uint8_t *)"id-1", 4}, {2, (const uint8_t *)"id-2", 4}};
  const veil_roster_entry twice[] = {{1, (const uint8_t *)"id-1", 4}, {1, (const uint8_t *)"id-2", 4}};
  const veil_roster_entry null_id[] = {{1, NULL, 4}};
  CHECK_RESULT(veil_protector_install_key(NULL, 1, KEY, 32, roster, 2, NOW, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_install_key(p, 1, NULL, 32, roster, 2, NOW, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_install_key(p, 1, KEY, 16, roster, 2, NOW, NOW), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(veil_protector_install_key(p, 1, KEY, 32, NULL, 2, NOW, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_install_key(p, 1, KEY, 32, twice, 2, NOW, NOW), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(veil_protector_install_key(p, 1, KEY, 32, null_id, 1, NOW, NOW), VEIL_RESULT_NULL_POINTER);

  /* Installed, but activating later: no send key until then. */
  CHECK_OK(veil_protector_set_own_slot(p, 2));
  CHECK_OK(veil_protector_install_key(p, 5, KEY, 32, roster, 2, NOW + 2000, NOW));
  CHECK_RESULT(veil_protector_install_key(p, 5, KEY, 32, roster, 2, NOW, NOW), VEIL_RESULT_KEY_NOT_NEWER);
  CHECK_RESULT(veil_protector_install_key(p, 4, KEY, 32, roster, 2, NOW, NOW), VEIL_RESULT_KEY_NOT_NEWER);
  CHECK_RESULT(veil_protector_protect(p, NOW, 0, buf, sizeof buf, VEIL_PROTECT_HEADROOM, 10, &off, &len), VEIL_RESULT_NO_SEND_KEY);
  /* The slot is fixed once a key is installed (a counter must never restart under a key). */
  CHECK_OK(veil_protector_set_own_slot(p, 2));
  CHECK_RESULT(veil_protector_set_own_slot(p, 3), VEIL_RESULT_WRONG_STATE);
  CHECK_RESULT(veil_protector_set_own_slot(NULL, 3), VEIL_RESULT_NULL_POINTER);

  /* Short buffers: headroom, tail room, the into variants' needed sizes. */
  CHECK_RESULT(veil_protector_protect(p, NOW + 2000, 0, buf, sizeof buf, 2, 10, &off, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK_RESULT(veil_protector_protect(p, NOW + 2000, 0, buf, VEIL_PROTECT_HEADROOM + 12, VEIL_PROTECT_HEADROOM, 10, &off, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK_RESULT(veil_protector_protect(p, NOW + 2000, 0, buf, sizeof buf, SIZE_MAX, 10, &off, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(off == SENTINEL && len == SENTINEL);
  CHECK_RESULT(veil_protector_protect(p, NOW + 2000, 0, NULL, sizeof buf, VEIL_PROTECT_HEADROOM, 10, &off, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_protect(p, NOW + 2000, 0, buf, sizeof buf, VEIL_PROTECT_HEADROOM, 10, NULL, &len), VEIL_RESULT_NULL_POINTER);
  uint8_t out[64];
  CHECK_RESULT(veil_protector_protect_into(p, NOW + 2000, 0, buf, 40, out, 40, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == 40 + VEIL_PROTECT_OVERHEAD);
  CHECK_RESULT(veil_protector_unprotect_into(p, NOW, buf, 100, out, sizeof out, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(len == 100);
  CHECK_RESULT(veil_protector_unprotect(NULL, NOW, buf, 10, &off, &len), VEIL_RESULT_NULL_POINTER);

  veil_protector_counters c;
  CHECK_RESULT(veil_protector_get_counters(p, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_OK(veil_protector_get_counters(p, &c));
  CHECK(c.seal_failed == 5 && c.drop_unknown_key == 1 && c.drop_bad_header == 1 && c.sealed == 0);

  size_t id_len = SENTINEL;
  uint8_t id[4];
  CHECK_RESULT(veil_sender_id((const uint8_t *)"user", 4, (const uint8_t *)"dev", 3, id, sizeof id, &id_len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(id_len == 11);
  CHECK_RESULT(veil_sender_id(NULL, 4, (const uint8_t *)"dev", 3, id, sizeof id, &id_len), VEIL_RESULT_NULL_POINTER);
  veil_protector_free(p);
}

static void session_misuse(void) {
  veil_session_params params = {
      (const uint8_t *)"m", 1, (const uint8_t *)"u", 1, (const uint8_t *)"alice", 5, (const uint8_t *)"d", 1,
      (const uint8_t *)"Alice", 5, (const uint8_t *)"bob", 3, (const uint8_t *)"d", 1, VEIL_PQ_PREFERRED,
  };
  veil_session *s = NULL;
  CHECK_RESULT(veil_session_new(NULL, NULL, 0, NOW, &s), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_new(&params, NULL, 0, NOW, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_new(&params, NULL, 32, NOW, &s), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_new(&params, KEY, 31, NOW, &s), VEIL_RESULT_INVALID_ARGUMENT);
  veil_session_params bad = params;
  bad.user_id = NULL;
  CHECK_RESULT(veil_session_new(&bad, NULL, 0, NOW, &s), VEIL_RESULT_NULL_POINTER);
  static uint8_t long_id[VEIL_MAX_ID_LEN + 1];
  bad = params;
  bad.meeting_id = long_id;
  bad.meeting_id_len = sizeof long_id;
  CHECK_RESULT(veil_session_new(&bad, NULL, 0, NOW, &s), VEIL_RESULT_INVALID_ARGUMENT);
  bad = params;
  bad.pq = 3; /* not a VEIL_PQ_* value */
  CHECK_RESULT(veil_session_new(&bad, NULL, 0, NOW, &s), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK(s == NULL);
  veil_session_free(NULL);

  CHECK_OK(veil_session_new(&params, KEY, 32, NOW, &s));
  size_t len = SENTINEL;
  uint8_t msg[16384]; /* a hybrid announcement is about 7 KB */
  /* Garbage from the board is refused and counted. */
  CHECK_RESULT(veil_session_handle_message(s, NOW, (const uint8_t *)"\x01\x02garbage", 9), VEIL_RESULT_MALFORMED_MESSAGE);
  CHECK_RESULT(veil_session_handle_message(s, NOW, NULL, 9), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_handle_message(NULL, NOW, msg, 9), VEIL_RESULT_NULL_POINTER);
  veil_session_counters counters;
  CHECK_OK(veil_session_get_counters(s, &counters));
  CHECK(counters.messages_refused == 1 && counters.messages_accepted == 0);

  /* The leader's binding is unknown: no security code yet. */
  char code[VEIL_SECURITY_CODE_SIZE];
  CHECK_RESULT(veil_session_security_code(s, code, sizeof code, &len), VEIL_RESULT_EMPTY);
  CHECK_RESULT(veil_session_security_code(NULL, code, sizeof code, &len), VEIL_RESULT_NULL_POINTER);
  CHECK(len == SENTINEL);

  CHECK_RESULT(veil_session_poll_transmit(s, msg, 1, &len), VEIL_RESULT_BUFFER_TOO_SMALL);
  CHECK(len > 1 && len <= sizeof msg);
  CHECK_RESULT(veil_session_poll_transmit(s, msg, sizeof msg, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_poll_transmit(s, NULL, sizeof msg, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_OK(veil_session_poll_transmit(s, msg, sizeof msg, &len));
  veil_event e;
  CHECK_RESULT(veil_session_poll_event(s, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_poll_event(s, &e), VEIL_RESULT_EMPTY);
  uint64_t at = 0;
  CHECK_RESULT(veil_session_next_timeout(s, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_OK(veil_session_next_timeout(s, &at));

  CHECK_RESULT(veil_session_mk_seq(s, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_is_leader(s, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_get_counters(s, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_security_code(s, NULL, sizeof code, &len), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_security_code(s, code, sizeof code, NULL), VEIL_RESULT_NULL_POINTER);

  /* A protector for another meeting cannot be linked. */
  veil_protector *other = NULL;
  CHECK_OK(veil_protector_new(VEIL_MODE_DATAGRAM, 5, (const uint8_t *)"x", 1, (const uint8_t *)"u", 1, VEIL_SLOT_UNSET, &other));
  CHECK_RESULT(veil_session_link_protector(s, other), VEIL_RESULT_INVALID_ARGUMENT);
  CHECK_RESULT(veil_session_link_protector(s, NULL), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_link_protector(NULL, other), VEIL_RESULT_NULL_POINTER);
  veil_protector_free(other);

  /* After leaving: the session only drains; inputs are refused. */
  CHECK_OK(veil_session_leave(s, NOW));
  CHECK_RESULT(veil_session_leave(s, NOW), VEIL_RESULT_SESSION_ENDED);
  CHECK_RESULT(veil_session_handle_timeout(s, NOW), VEIL_RESULT_SESSION_ENDED);
  CHECK_RESULT(veil_session_handle_message(s, NOW, msg, len), VEIL_RESULT_SESSION_ENDED);
  CHECK_RESULT(veil_session_next_timeout(s, &at), VEIL_RESULT_EMPTY);
  uint8_t leads = 0;
  CHECK_RESULT(veil_session_is_leader(s, &leads), VEIL_RESULT_SESSION_ENDED);
  veil_session_free(s);
}

/* Every function given a NULL object handle refuses it. */
static void null_handles(void) {
  uint8_t buf[64] = {0};
  size_t a = SENTINEL, b = SENTINEL;
  uint64_t ms = 0;
  uint32_t seq = 0;
  uint8_t flag = 0;
  char code[VEIL_SECURITY_CODE_SIZE];
  veil_event e;
  veil_session_counters sc;
  CHECK_RESULT(veil_sframe_decrypt(NULL, NULL, 0, buf, sizeof buf, buf, sizeof buf, &a), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_retire(NULL, 1, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_prune(NULL, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_protect_into(NULL, NOW, 0, buf, 1, buf, sizeof buf, &a), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_unprotect_into(NULL, NOW, buf, 1, buf, sizeof buf, &a), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_unprotect(NULL, NOW, buf, sizeof buf, &a, &b), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_protector_protect(NULL, NOW, 0, buf, sizeof buf, 32, 1, &a, &b), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_handle_timeout(NULL, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_leave(NULL, NOW), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_poll_transmit(NULL, buf, sizeof buf, &a), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_poll_event(NULL, &e), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_next_timeout(NULL, &ms), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_security_code(NULL, code, sizeof code, &a), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_mk_seq(NULL, &seq), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_is_leader(NULL, &flag), VEIL_RESULT_NULL_POINTER);
  CHECK_RESULT(veil_session_get_counters(NULL, &sc), VEIL_RESULT_NULL_POINTER);
  CHECK(a == SENTINEL && b == SENTINEL && ms == 0 && seq == 0 && flag == 0);
}

int main(void) {
  null_handles();
  version();
  sframe_misuse();
  protector_misuse();
  session_misuse();
  printf("misuse: every call refused with a result code\n");
  return 0;
}
