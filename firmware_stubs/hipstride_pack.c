/*
 * hipstride open BLE profile v1: packing and command parsing (portable C99).
 * See hipstride_profile.h for the API and PROTOCOL.md for the wire format.
 */
#include "hipstride_profile.h"

#include <string.h>

/* Little-endian stores byte by byte, so the code is right on any CPU endianness. */
static void put_u16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

static void put_i16(uint8_t *p, int16_t v) {
    /* Two's complement via the unsigned conversion, which C99 defines exactly. */
    put_u16(p, (uint16_t)v);
}

static uint16_t get_u16(const uint8_t *p) {
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

bool hs_config_valid(const hs_config_t *cfg) {
    if (cfg == NULL || cfg->rate_hz == 0u || cfg->rate_hz > HS_MAX_RATE_HZ) {
        return false;
    }
    switch (cfg->acc_range_g) {
    case 2: case 4: case 8: case 16: break;
    default: return false;
    }
    switch (cfg->gyr_range_dps) {
    case 0: case 125: case 250: case 500: case 1000: case 2000: return true;
    default: return false;
    }
}

size_t hs_packet_size(uint8_t n, bool with_gyro) {
    return HS_HEADER_BYTES + (size_t)n * (with_gyro ? 12u : 6u);
}

uint8_t hs_samples_per_packet(uint16_t att_mtu, bool with_gyro) {
    size_t payload = att_mtu > 3u ? (size_t)att_mtu - 3u : 0u;
    size_t per = with_gyro ? 12u : 6u;
    size_t n = payload > HS_HEADER_BYTES ? (payload - HS_HEADER_BYTES) / per : 0u;
    return (uint8_t)(n > HS_MAX_SAMPLES ? HS_MAX_SAMPLES : n);
}

size_t hs_pack(uint8_t *out, size_t cap, const hs_config_t *cfg, uint32_t counter,
               uint32_t timestamp_us, const hs_sample_t *samples, uint8_t n) {
    if (out == NULL || samples == NULL || !hs_config_valid(cfg) || n == 0u ||
        n > HS_MAX_SAMPLES) {
        return 0u;
    }
    const bool with_gyro = cfg->gyr_range_dps != 0u;
    const size_t size = hs_packet_size(n, with_gyro);
    if (cap < size) {
        return 0u;
    }
    out[0] = (uint8_t)HS_PROTOCOL_VERSION;
    out[1] = with_gyro ? (uint8_t)HS_FLAG_GYRO : 0u;
    out[2] = n;
    out[3] = cfg->acc_range_g;
    put_u16(&out[4], cfg->gyr_range_dps);
    put_u16(&out[6], cfg->rate_hz);
    put_u32(&out[8], counter);
    put_u32(&out[12], timestamp_us);
    uint8_t *p = &out[HS_HEADER_BYTES];
    for (uint8_t i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++, p += 2) {
            put_i16(p, samples[i].acc[k]);
        }
        if (with_gyro) {
            for (int k = 0; k < 3; k++, p += 2) {
                put_i16(p, samples[i].gyr[k]);
            }
        }
    }
    return size;
}

hs_command_t hs_parse_command(const uint8_t *data, size_t len, hs_config_t *cfg) {
    if (data == NULL || len == 0u) {
        return HS_COMMAND_INVALID;
    }
    if (data[0] == HS_CMD_STOP && len == 1u) {
        return HS_COMMAND_STOP;
    }
    if (data[0] != HS_CMD_START || len != HS_START_COMMAND_BYTES || cfg == NULL) {
        return HS_COMMAND_INVALID;
    }
    hs_config_t parsed;
    parsed.rate_hz = get_u16(&data[1]);
    parsed.acc_range_g = data[3];
    parsed.gyr_range_dps = get_u16(&data[4]);
    if (!hs_config_valid(&parsed)) {
        return HS_COMMAND_INVALID;
    }
    *cfg = parsed;
    return HS_COMMAND_START;
}

size_t hs_encode_start(uint8_t *out, size_t cap, const hs_config_t *cfg) {
    if (out == NULL || cap < HS_START_COMMAND_BYTES || !hs_config_valid(cfg)) {
        return 0u;
    }
    out[0] = (uint8_t)HS_CMD_START;
    put_u16(&out[1], cfg->rate_hz);
    out[3] = cfg->acc_range_g;
    put_u16(&out[4], cfg->gyr_range_dps);
    return HS_START_COMMAND_BYTES;
}

bool hs_packer_init(hs_packer_t *p, const hs_config_t *cfg, uint8_t per_packet) {
    if (p == NULL || !hs_config_valid(cfg) || per_packet == 0u || per_packet > HS_MAX_SAMPLES) {
        return false;
    }
    memset(p, 0, sizeof *p);
    p->cfg = *cfg;
    p->per_packet = per_packet;
    return true;
}

size_t hs_packer_add(hs_packer_t *p, const hs_sample_t *sample, uint32_t timestamp_us,
                     uint8_t *out, size_t cap) {
    if (p == NULL || sample == NULL) {
        return 0u;
    }
    if (p->n == 0u) {
        p->first_timestamp_us = timestamp_us;
    }
    p->buf[p->n++] = *sample;
    if (p->n < p->per_packet) {
        return 0u;
    }
    const uint32_t counter = p->next_counter;
    /* The counter advances even if the packet cannot be sent: the host sees the gap. */
    p->next_counter += p->n;
    p->n = 0u;
    return hs_pack(out, cap, &p->cfg, counter, p->first_timestamp_us, p->buf, p->per_packet);
}
