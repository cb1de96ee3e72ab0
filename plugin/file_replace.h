/* Writing small files: whole, atomically, never through a planted link. */
#ifndef SSM_FILE_REPLACE_H
#define SSM_FILE_REPLACE_H

#include <stddef.h>

/* Writes text to a new file beside path (mkostemp: exclusive, unpredictable
 * name, mode 0600, so a link planted there is never followed), then renames
 * it over path: readers see the old file or the whole new one. 0, or -1 with
 * errno set (the temporary file removed). */
int ssm_file_replace(const char *path, const char *text, size_t n);
/* Writes all of p to fd (retrying short writes and EINTR): 0 or -1. */
int ssm_write_all(int fd, const char *p, size_t n);

#endif
