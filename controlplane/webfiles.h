/* Static files of the admin single-page app (admin-web/), served by the
 * control plane under /admin/. Read-only, GET only, confined to one
 * directory: no "..", no symlinks out, regular files up to 8 MiB. */
#ifndef SY_WEBFILES_H
#define SY_WEBFILES_H

#include "httpd.h"

#define SY_WEBFILES_MAX_BYTES (8 * 1024 * 1024)

/* Serves path ("/admin", "/admin/", "/admin/app.js"...) from dir (borrowed)
 * into res: "/admin/" is index.html, and a path whose last segment has no
 * extension falls back to index.html (client-side routes). Returns 0 when
 * res holds the file, SY_ENOENT when there is no such file (or the path is
 * not an acceptable one), SY_E2BIG past the size cap, SY_EIO on read errors;
 * res is untouched on failure. */
int sy_webfiles_serve(const char *dir, sy_str_t path, sy_httpd_response_t *res);

#endif
