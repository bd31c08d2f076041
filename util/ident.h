/*
 * ident: the one rule for the ids cdpilot puts into Redis key names and file names
 * (targets, entities, store keys): 1 to IDENT_MAX bytes of [A-Za-z0-9_.-], not starting
 * with '.' or '-'. Such an id can name nothing outside its own key or file. Pure.
 */
#ifndef CDPILOT_UTIL_IDENT_H
#define CDPILOT_UTIL_IDENT_H

#define IDENT_MAX 64

/* 1 if id (NUL-terminated; NULL is accepted) follows the rule, else 0. */
int ident_valid(const char *id);

#endif
