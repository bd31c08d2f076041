/* placeholder: being written */
typedef int cdpilot_placeholder_t;
