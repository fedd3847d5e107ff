/*
 * Host-compiled check of hipstride_pack.c: packs known samples and prints one JSON
 * object per line (inputs and the packet as hex), so tests/test_firmware_agreement.py
 * can decode the C bytes in Python and repack the same inputs with the Python packer.
 *
 *   cc -std=c99 -Wall -Wextra -pedantic -I.. pack_vectors.c ../hipstride_pack.c
 */
#include <stdio.h>

#include "hipstride_profile.h"

static void print_hex(const uint8_t *data, size_t len) {
    for (size_t i = 0; i < len; i++) {
        printf("%02x", data[i]);
    }
}

static void print_packet(const char *name, const hs_config_t *cfg, uint32_t counter,
                         uint32_t ts, const hs_sample_t *s, uint8_t n) {
    uint8_t out[HS_MAX_PACKET_BYTES];
    size_t len = hs_pack(out, sizeof out, cfg, counter, ts, s, n);
    const int gyro = cfg->gyr_range_dps != 0u;
    printf("{\"kind\": \"packet\", \"name\": \"%s\", \"rate_hz\": %u, \"acc_range_g\": %u, "
           "\"gyr_range_dps\": %u, \"counter\": %lu, \"timestamp_us\": %lu, \"acc\": [",
           name, (unsigned)cfg->rate_hz, (unsigned)cfg->acc_range_g,
           (unsigned)cfg->gyr_range_dps, (unsigned long)counter, (unsigned long)ts);
    for (uint8_t i = 0; i < n; i++) {
        printf("%s[%d, %d, %d]", i ? ", " : "", s[i].acc[0], s[i].acc[1], s[i].acc[2]);
    }
    printf("], \"gyr\": ");
    if (gyro) {
        printf("[");
        for (uint8_t i = 0; i < n; i++) {
            printf("%s[%d, %d, %d]", i ? ", " : "", s[i].gyr[0], s[i].gyr[1], s[i].gyr[2]);
        }
        printf("]");
    } else {
        printf("null");
    }
    printf(", \"hex\": \"");
    print_hex(out, len);
    printf("\"}\n");
}

/* Deterministic values covering the whole int16 range, both extremes included. */
static int16_t pattern(unsigned i, unsigned k, unsigned salt) {
    unsigned long v = (i * 4099ul + k * 7919ul + salt * 104729ul) % 65536ul;
    if (i == 0u && k == 0u) {
        return (int16_t)-32768;
    }
    if (i == 0u && k == 1u) {
        return (int16_t)32767;
    }
    return (int16_t)((long)v - 32768L);
}

int main(void) {
    hs_sample_t s[HS_MAX_SAMPLES];

    /* 1. The vector written out by hand in PROTOCOL.md and tests/test_protocol_hipstride.py */
    const hs_config_t six = {208u, 16u, 2000u};
    hs_sample_t one = {{2048, -2048, 32767}, {-32768, 0, 16384}};
    print_packet("spec_vector", &six, 0xFFFFFFFFul, 0x01020304ul, &one, 1u);

    /* 2. A full 6-axis packet. */
    for (unsigned i = 0; i < HS_MAX_SAMPLES; i++) {
        for (unsigned k = 0; k < 3; k++) {
            s[i].acc[k] = pattern(i, k, 1u);
            s[i].gyr[k] = pattern(i, k, 2u);
        }
    }
    print_packet("full_6axis", &six, 123456789ul, 4000000000ul, s, HS_MAX_SAMPLES);

    /* 3. Accelerometer only (chest strap style), 8 g at 100 Hz. */
    const hs_config_t acc_only = {100u, 8u, 0u};
    print_packet("acc_only", &acc_only, 7ul, 0ul, s, 8u);

    /* 4. The batching helper: 10 samples, 4 per packet -> 2 packets, 2 samples pending. */
    hs_packer_t packer;
    if (!hs_packer_init(&packer, &six, 4u)) {
        return 1;
    }
    for (unsigned i = 0; i < 10u; i++) {
        uint8_t out[HS_MAX_PACKET_BYTES];
        size_t len = hs_packer_add(&packer, &s[i], (uint32_t)(1000000ul + i * 4808ul), out, sizeof out);
        if (len) {
            printf("{\"kind\": \"packer\", \"after_sample\": %u, \"hex\": \"", i);
            print_hex(out, len);
            printf("\"}\n");
        }
    }

    /* 5. Commands. */
    uint8_t cmd[HS_START_COMMAND_BYTES];
    size_t len = hs_encode_start(cmd, sizeof cmd, &six);
    printf("{\"kind\": \"start\", \"rate_hz\": 208, \"acc_range_g\": 16, \"gyr_range_dps\": 2000, "
           "\"hex\": \"");
    print_hex(cmd, len);
    printf("\"}\n");
    hs_config_t parsed = {0u, 0u, 0u};
    const uint8_t stop = HS_CMD_STOP;
    /* Sequenced on purpose: argument evaluation order in a call is unspecified. */
    const int started = hs_parse_command(cmd, len, &parsed) == HS_COMMAND_START;
    const int same = parsed.rate_hz == six.rate_hz && parsed.acc_range_g == six.acc_range_g &&
                     parsed.gyr_range_dps == six.gyr_range_dps;
    const int stopped = hs_parse_command(&stop, 1u, &parsed) == HS_COMMAND_STOP;
    printf("{\"kind\": \"parse\", \"start\": %d, \"same\": %d, \"stop\": %d}\n", started,
           same, stopped);

    /* 6. Everything that must be refused (each prints 0). */
    const hs_config_t bad_range = {208u, 3u, 2000u};
    const uint8_t bad_cmd[HS_START_COMMAND_BYTES] = {HS_CMD_START, 0xd0, 0x00, 0x03, 0xd0, 0x07};
    uint8_t small[20];
    printf("{\"kind\": \"refused\", \"n0\": %u, \"n20\": %u, \"cap\": %u, \"config\": %u, "
           "\"command\": %d, \"mtu23\": %u, \"mtu247\": %u}\n",
           (unsigned)hs_pack(small, sizeof small, &six, 0u, 0u, s, 0u),
           (unsigned)hs_pack(small, sizeof small, &six, 0u, 0u, s, 20u),
           (unsigned)hs_pack(small, sizeof small, &six, 0u, 0u, s, 2u),
           (unsigned)hs_pack(small, sizeof small, &bad_range, 0u, 0u, s, 1u),
           (int)hs_parse_command(bad_cmd, sizeof bad_cmd, &parsed),
           (unsigned)hs_samples_per_packet(23u, true),
           (unsigned)hs_samples_per_packet(247u, true));
    return 0;
}
