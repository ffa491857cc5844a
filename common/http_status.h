/* HTTP reason phrases, shared by every server in the tree (data plane,
 * admin API, mock provider). */
#ifndef SY_HTTP_STATUS_H
#define SY_HTTP_STATUS_H

#include "defs.h"

/* The reason phrase of status (a constant view; "Status" for codes without
 * one: clients read the number, never the phrase). */
sy_str_t sy_http_reason(int status);

#endif
