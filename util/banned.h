/*
 * banned: turns calls to C library functions cdpilot does not use into compile errors,
 * after git's banned.h. Each of them has a bounded or checked replacement:
 *   strcpy, strcat        snprintf into a sized buffer, or memcpy with a known length
 *   sprintf, vsprintf     snprintf, vsnprintf (and check the result for truncation)
 *   atoi                  strtol/strtoul with errno, end pointer and range checks
 *   strtok                strtok_r, or strcspn/strspn on a const string
 *   gets                  fgets, getline
 * A call such as strcpy(a, b) becomes the undeclared identifier
 * sorry_strcpy_is_a_banned_function, so the error message names the reason.
 *
 * Included by the build in front of every file (-include util/banned.h). It first
 * includes the system headers that declare these functions, so their declarations and
 * glibc's fortified inline versions are seen before the macros exist; feature macros such
 * as _GNU_SOURCE must therefore be set on the command line (-D), as CMake does.
 */
#ifndef CDPILOT_UTIL_BANNED_H
#define CDPILOT_UTIL_BANNED_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(dst, src) BANNED(strcpy)
#undef strcat
#define strcat(dst, src) BANNED(strcat)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef atoi
#define atoi(s) BANNED(atoi)
#undef strtok
#define strtok(s, delim) BANNED(strtok)
#undef gets
#define gets(s) BANNED(gets)

#endif
