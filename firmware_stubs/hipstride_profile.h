/*
 * hipstride open BLE profile, version 1: constants and packing for sensor firmware.
 *
 * Portable C99, no SDK or Arduino dependency: call these from your nRF Connect SDK,
 * nRF5 SDK, NimBLE or ESP-IDF code. The wire format is specified in PROTOCOL.md; the
 * host decoder is sensors/protocols/hipstride_profile.py, and
 * tests/test_firmware_agreement.py checks that both produce identical bytes.
 */
#ifndef HIPSTRIDE_PROFILE_H
#define HIPSTRIDE_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HS_PROTOCOL_VERSION 1u
#define HS_HEADER_BYTES 16u
#define HS_MAX_SAMPLES 19u /* 16 + 19 * 12 = 244 bytes = ATT MTU 247 - 3 */
#define HS_MAX_PACKET_BYTES (HS_HEADER_BYTES + HS_MAX_SAMPLES * 12u)
#define HS_MAX_RATE_HZ 1000u
#define HS_FLAG_GYRO 0x01u

#define HS_CMD_START 0x01u
#define HS_CMD_STOP 0x02u
#define HS_START_COMMAND_BYTES 6u

/* 128-bit UUIDs: one random base, 16-bit aliases in bytes 12-13 (an nRF SoftDevice
 * or Zephyr stores the base once). */
#define HS_SERVICE_UUID_STR "798e0001-3433-45cf-81c0-3521e775e6a8"
#define HS_DATA_UUID_STR "798e0002-3433-45cf-81c0-3521e775e6a8"
#define HS_CONTROL_UUID_STR "798e0003-3433-45cf-81c0-3521e775e6a8"
/* The base in little-endian byte order, as nRF5 SDK / NimBLE / ESP-IDF expect it. */
#define HS_UUID_BASE_LE                                                                \
    {0xa8, 0xe6, 0x75, 0xe7, 0x21, 0x35, 0xc0, 0x81, 0xcf, 0x45, 0x33, 0x34, 0x00, 0x00, \
     0x8e, 0x79}
#define HS_SERVICE_UUID16 0x0001u
#define HS_DATA_UUID16 0x0002u
#define HS_CONTROL_UUID16 0x0003u
/* Battery: the standard Battery Service 0x180F, Battery Level 0x2A19 (read, notify). */
#define HS_BATTERY_SERVICE_UUID16 0x180Fu
#define HS_BATTERY_LEVEL_UUID16 0x2A19u

/* What the host asks for in START; echoed in every data packet. */
typedef struct {
    uint16_t rate_hz;       /* 1..1000 */
    uint8_t acc_range_g;    /* 2, 4, 8 or 16 */
    uint16_t gyr_range_dps; /* 125, 250, 500, 1000, 2000; 0 = accelerometer only */
} hs_config_t;

/* One IMU sample in raw counts: full scale (the configured range) = 32768. */
typedef struct {
    int16_t acc[3];
    int16_t gyr[3]; /* ignored when gyr_range_dps == 0 */
} hs_sample_t;

typedef enum {
    HS_COMMAND_INVALID = 0, /* answer the write with ATT error 0x13 Value Not Allowed */
    HS_COMMAND_START = 1,
    HS_COMMAND_STOP = 2
} hs_command_t;

/* true when every field of cfg is a value the protocol allows. */
bool hs_config_valid(const hs_config_t *cfg);

/* Bytes of a packet with n samples. */
size_t hs_packet_size(uint8_t n, bool with_gyro);

/* Samples that fit one notification at this ATT MTU (0 if none fits: raise the MTU). */
uint8_t hs_samples_per_packet(uint16_t att_mtu, bool with_gyro);

/*
 * Write one data notification into out. counter: sample counter of samples[0] (+1 per
 * sample, also for samples you could not send, so the host counts the loss);
 * timestamp_us: your microsecond clock when samples[0] was measured (wraps at 2^32).
 * Returns the bytes written, or 0 if an argument is invalid or cap is too small.
 */
size_t hs_pack(uint8_t *out, size_t cap, const hs_config_t *cfg, uint32_t counter,
               uint32_t timestamp_us, const hs_sample_t *samples, uint8_t n);

/* Parse a write to the control characteristic; *cfg is filled for START. */
hs_command_t hs_parse_command(const uint8_t *data, size_t len, hs_config_t *cfg);

/* The START command bytes for cfg (host side; used by tests). Returns 6 or 0. */
size_t hs_encode_start(uint8_t *out, size_t cap, const hs_config_t *cfg);

/*
 * Batching helper: feed it every sample from your IMU data-ready handler; it returns
 * a packet length when a packet of per_packet samples is ready in out.
 */
typedef struct {
    hs_config_t cfg;
    uint8_t per_packet;
    uint8_t n;
    uint32_t next_counter;
    uint32_t first_timestamp_us;
    hs_sample_t buf[HS_MAX_SAMPLES];
} hs_packer_t;

/* Returns false if cfg is invalid or per_packet is outside 1..HS_MAX_SAMPLES. */
bool hs_packer_init(hs_packer_t *p, const hs_config_t *cfg, uint8_t per_packet);
size_t hs_packer_add(hs_packer_t *p, const hs_sample_t *sample, uint32_t timestamp_us,
                     uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif /* HIPSTRIDE_PROFILE_H */
