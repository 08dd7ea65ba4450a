#ifndef CCURL_H
#define CCURL_H

// libcurl, loaded when the first request is made rather than linked: a command that never
// touches the network (an offline query) then loads none of the thirty libraries libcurl
// brings. Only the calls the HTTP transport makes are here, each with fixed argument types
// (libcurl's option setters are variadic, which Swift cannot call).

#include <stddef.h>
#include <stdint.h>

typedef struct ccurl_easy ccurl_easy;
typedef struct ccurl_multi ccurl_multi;
typedef struct ccurl_slist ccurl_slist;

/// libcurl's callbacks for the answer's bytes and for each header line.
typedef size_t (*ccurl_data_callback)(char *_Nullable data, size_t size, size_t count, void *_Nullable context);

/// Loads libcurl and initialises it, once a process. 0 when it is ready; otherwise a
/// message saying why (a static string).
const char *_Nullable ccurl_load(void);

/// libcurl's version line ("libcurl/7.88.1 OpenSSL/3.0 ..."), after a load.
const char *_Nullable ccurl_version(void);

ccurl_easy *_Nullable ccurl_easy_init(void);
void ccurl_easy_cleanup(ccurl_easy *_Nonnull easy);
int ccurl_easy_setopt_long(ccurl_easy *_Nonnull easy, int option, long value);
int ccurl_easy_setopt_pointer(ccurl_easy *_Nonnull easy, int option, const void *_Nullable value);
int ccurl_easy_setopt_offset(ccurl_easy *_Nonnull easy, int option, int64_t value);
int ccurl_easy_setopt_callback(ccurl_easy *_Nonnull easy, int option, ccurl_data_callback _Nonnull callback);
int ccurl_easy_getinfo_long(ccurl_easy *_Nonnull easy, int info, long *_Nonnull value);
const char *_Nonnull ccurl_easy_strerror(int code);

ccurl_slist *_Nullable ccurl_slist_append(ccurl_slist *_Nullable list, const char *_Nonnull line);
void ccurl_slist_free_all(ccurl_slist *_Nullable list);

ccurl_multi *_Nullable ccurl_multi_init(void);
int ccurl_multi_cleanup(ccurl_multi *_Nonnull multi);
int ccurl_multi_setopt_long(ccurl_multi *_Nonnull multi, int option, long value);
int ccurl_multi_add_handle(ccurl_multi *_Nonnull multi, ccurl_easy *_Nonnull easy);
int ccurl_multi_remove_handle(ccurl_multi *_Nonnull multi, ccurl_easy *_Nonnull easy);
int ccurl_multi_perform(ccurl_multi *_Nonnull multi, int *_Nonnull running);
/// Waits up to `milliseconds` for activity on the transfers' sockets or for a wakeup.
int ccurl_multi_poll(ccurl_multi *_Nonnull multi, int milliseconds);
/// Ends a `ccurl_multi_poll` early; the one call that is safe from another thread.
int ccurl_multi_wakeup(ccurl_multi *_Nonnull multi);
/// The next finished transfer: 1 with its handle and result code, or 0 when none is left.
int ccurl_multi_next_done(ccurl_multi *_Nonnull multi, ccurl_easy *_Nullable *_Nonnull easy, int *_Nonnull result);

#endif
