/* cdp_err: names for cdpilot's error codes and negative errno values. */
#include "cdp/cdp_err.h"

#include <string.h>

const char *cdp_strerror(int err)
{
	switch (err) {
	case 0: return "ok";
	case CDP_EPROTOCOL: return "protocol error";
	case CDP_ECONNLOST: return "connection lost";
	case CDP_EBADREPLY: return "malformed reply";
	case CDP_ENOBROWSER: return "no browser";
	case CDP_ECRASHED: return "target crashed";
	case CDP_ENAV: return "navigation failed";
	case CDP_EEXCEPTION: return "javascript exception";
	case CDP_EHTTP: return "HTTP error status";
	case CDP_EVALUE: return "unusable value";
	default: break;
	}
	if (err < 0 && err > -4096)
		return strerror(-err);
	return "unknown error";
}
