/* cdp_names: the storage for the CDP_M_* and CDP_E_* name constants of cdp_names.h. */
#include "cdp/cdp_names.h"

#define CDP__NAME_DEF_M(id, name) const char CDP_M_##id[] = name;
#define CDP__NAME_DEF_E(id, name) const char CDP_E_##id[] = name;
CDP_METHODS(CDP__NAME_DEF_M)
CDP_EVENTS(CDP__NAME_DEF_E)
