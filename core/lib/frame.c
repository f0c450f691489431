/*
 * frame.c - encoding and decoding of the parent/worker frames (frame.h).
 */
#include <stddef.h>
#include <string.h>

#include "frame.h"
#include "util.h"

int pexec__frame_begin(pexec_buf *buf, uint32_t type, uint64_t aux)
{
	struct pexec__frame_header h = { .type = type, .aux = aux };

	return pexec_buf_append(buf, &h, sizeof(h));
}

void pexec__frame_end(pexec_buf *buf, size_t start, uint32_t count)
{
	struct pexec__frame_header h;

	memcpy(&h, buf->data + start, sizeof(h));
	h.count = count;
	h.payload_len = buf->len - start - sizeof(h);
	memcpy(buf->data + start, &h, sizeof(h));
}

void pexec__frame_set_aux(pexec_buf *buf, size_t start, uint64_t aux)
{
	memcpy(buf->data + start + offsetof(struct pexec__frame_header, aux), &aux, sizeof(aux));
}

int pexec__frame_put_item(pexec_buf *buf, const char *data, size_t len)
{
	uint32_t n = (uint32_t)len;

	if (len > UINT32_MAX - PEXEC_ITEM_OVERHEAD || pexec_buf_reserve(buf, len + PEXEC_ITEM_OVERHEAD))
		return -1;
	memcpy(buf->data + buf->len, &n, 4);
	memcpy(buf->data + buf->len + 4, data, len);
	buf->data[buf->len + 4 + len] = '\0';
	buf->len += len + PEXEC_ITEM_OVERHEAD;
	return 0;
}

size_t pexec__frame_record_begin(pexec_buf *buf)
{
	size_t at = buf->len;

	if (pexec_buf_reserve(buf, PEXEC_RECORD_HEADER))
		return (size_t)-1;
	memset(buf->data + at, 0, PEXEC_RECORD_HEADER);
	buf->len += PEXEC_RECORD_HEADER;
	return at;
}

void pexec__frame_record_end(pexec_buf *buf, size_t at, int ok, pexec_stage stage)
{
	uint32_t n = (uint32_t)(buf->len - at - PEXEC_RECORD_HEADER);
	unsigned char *h = (unsigned char *)buf->data + at;

	memcpy(h, &n, 4);
	h[4] = (unsigned char)ok;
	h[5] = (unsigned char)stage;
}

int pexec__frame_parse_header(const char *data, struct pexec__frame_header *h,
                              pexec_error *err)
{
	memcpy(h, data, sizeof(*h));
	switch (h->type) {
	case PEXEC_FRAME_CHUNK:
	case PEXEC_FRAME_RESULTS:
	case PEXEC_FRAME_INITFAIL:
	case PEXEC_FRAME_SPAN:
	case PEXEC_FRAME_SPAN_RESULTS:
	case PEXEC_FRAME_WRITE:
		break;
	case PEXEC_FRAME_READY:
	case PEXEC_FRAME_RESULTS_SHM:
	case PEXEC_FRAME_WRITTEN:
		if (h->payload_len == 0)
			break;
		/* fall through */
	default:
		pexec__fail(err, PEXEC_ESYS, "protocol error: unknown frame 0x%08x", h->type);
		return -1;
	}
	if (h->payload_len > PEXEC_FRAME_MAX) {
		pexec__fail(err, PEXEC_ESYS, "protocol error: frame of %llu bytes",
		            (unsigned long long)h->payload_len);
		return -1;
	}
	return 0;
}

int pexec__frame_next_item(struct pexec__frame_cursor *c, const char **data, size_t *len)
{
	uint32_t n;

	if (c->p == c->end)
		return 0;
	if ((size_t)(c->end - c->p) < PEXEC_ITEM_OVERHEAD)
		return -1;
	memcpy(&n, c->p, 4);
	if ((size_t)(c->end - c->p) - PEXEC_ITEM_OVERHEAD < n || c->p[4 + n] != '\0')
		return -1;
	*data = c->p + 4;
	*len = n;
	c->p += (size_t)n + PEXEC_ITEM_OVERHEAD;
	return 1;
}

int pexec__frame_next_record(struct pexec__frame_cursor *c, const char **data, size_t *len,
                             int *ok, pexec_stage *stage)
{
	uint32_t n;
	const unsigned char *h = (const unsigned char *)c->p;

	if (c->p == c->end)
		return 0;
	if ((size_t)(c->end - c->p) < PEXEC_RECORD_HEADER)
		return -1;
	memcpy(&n, h, 4);
	if ((size_t)(c->end - c->p) - PEXEC_RECORD_HEADER < n || h[4] >= PEXEC_STATUS_COUNT ||
	    h[5] >= PEXEC_STAGE_COUNT)
		return -1;
	*ok = h[4];
	*stage = (pexec_stage)h[5];
	*data = c->p + PEXEC_RECORD_HEADER;
	*len = n;
	c->p += (size_t)n + PEXEC_RECORD_HEADER;
	return 1;
}

uint8_t pexec__record_byte(pexec_status status)
{
	return status == PEXEC_STATUS_OK ? 1 : status == PEXEC_STATUS_ERROR ? 0 : (uint8_t)status;
}

pexec_status pexec__record_status(uint8_t byte)
{
	return byte == 1 ? PEXEC_STATUS_OK : byte == 0 ? PEXEC_STATUS_ERROR : (pexec_status)byte;
}
