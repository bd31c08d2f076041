/*
 * libFuzzer target for httpd's request head parser: any bytes, any head limit. The parser
 * must answer one of its documented statuses, never read past the input, and on 200 point
 * at a target inside a head that ends at the input's end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/httpd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	httpd__req_t req;
	size_t max_head;
	char *copy;
	int st;

	if (size < 2)
		return 0;
	max_head = 64 + (size_t)data[0] * 32; /* 64..8224 */
	data++;
	size--;
	copy = malloc(size ? size : 1); /* exact size: ASan sees any read past the end */
	memcpy(copy, data, size);
	st = httpd__parse(copy, size, max_head, &req);
	switch (st) {
	case 0:
		if (size > max_head)
			abort(); /* over the limit yet still asking for more */
		break;
	case 200:
		if (req.head_len != size || req.head_len > max_head || !req.target ||
		    req.target < copy || req.target + req.target_len > copy + size ||
		    req.target[0] != '/')
			abort();
		break;
	case 400: case 405: case 414: case 431:
		if (!req.error)
			abort();
		break;
	default:
		abort();
	}
	free(copy);
	return 0;
}
