/* The RFC 9605 Appendix C vectors (and the registry's AES-256-CTR-HMAC ones) through the C API:
 * every suite's frame decrypts to the published plaintext, and encrypting it at the published
 * counter gives the published ciphertext byte for byte. */
#include <string.h>

#include "check.h"
#include "vectors.h"

/* Encrypts dummy frames until the send key's next counter is `ctr`: the C API starts every
 * key at counter 0 and never lets a caller pick one, so this is how to reach the vector's. */
static void spend_counters(veil_sframe_context *ctx, uint64_t kid, uint64_t ctr) {
  uint8_t frame[64];
  size_t len = 0;
  for (uint64_t i = 0; i < ctr; i++) {
    CHECK_OK(veil_sframe_encrypt(ctx, kid, NULL, 0, (const uint8_t *)"x", 1, frame, sizeof frame, &len));
  }
}

static void check_vector(const struct sframe_vector *v) {
  veil_sframe_context *receiver = NULL;
  veil_sframe_context *sender = NULL;
  CHECK_OK(veil_sframe_context_new(v->suite, &receiver));
  CHECK_OK(veil_sframe_context_new(v->suite, &sender));
  CHECK_OK(veil_sframe_add_recv_key(receiver, v->kid, v->base_key, v->base_key_len));
  CHECK_OK(veil_sframe_add_send_key(sender, v->kid, v->base_key, v->base_key_len));

  uint8_t out[256];
  size_t len = 0;
  CHECK_OK(veil_sframe_decrypt_size(receiver, v->ct, v->ct_len, &len));
  CHECK(len == v->pt_len);
  CHECK_OK(veil_sframe_decrypt(receiver, v->metadata, v->metadata_len, v->ct, v->ct_len, out, sizeof out, &len));
  CHECK(len == v->pt_len && memcmp(out, v->pt, len) == 0);

  /* Flip each byte in turn (header, ciphertext, tag): never a plaintext, never a crash. */
  uint8_t tampered[256];
  for (size_t i = 0; i < v->ct_len; i++) {
    memcpy(tampered, v->ct, v->ct_len);
    tampered[i] ^= 0x01;
    memset(out, 0xAA, sizeof out);
    size_t untouched = 12345;
    veil_result r = veil_sframe_decrypt(receiver, v->metadata, v->metadata_len, tampered, v->ct_len, out, sizeof out, &untouched);
    CHECK(r != VEIL_RESULT_OK);
    CHECK(untouched == 12345);
    for (size_t j = 0; j < sizeof out; j++) CHECK(out[j] == 0xAA);
  }

  spend_counters(sender, v->kid, v->ctr);
  CHECK_OK(veil_sframe_encrypt_size(sender, v->kid, v->pt_len, &len));
  CHECK(len == v->ct_len);
  CHECK_OK(veil_sframe_encrypt(sender, v->kid, v->metadata, v->metadata_len, v->pt, v->pt_len, out, sizeof out, &len));
  CHECK(len == v->ct_len && memcmp(out, v->ct, len) == 0);

  veil_sframe_context_free(sender);
  veil_sframe_context_free(receiver);
}

int main(void) {
  CHECK(SFRAME_VECTOR_COUNT == 8);
  for (size_t i = 0; i < SFRAME_VECTOR_COUNT; i++) {
    check_vector(&SFRAME_VECTORS[i]);
    printf("suite 0x%04x: decrypt and encrypt match the published vector\n", SFRAME_VECTORS[i].suite);
  }
  return 0;
}
