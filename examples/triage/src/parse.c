#include <string.h>

/* Copies the header name (up to ':') into out. */
int parse_header(const char *line, char *out, size_t size) {
  const char *colon = strchr(line, ':');
  size_t n = (size_t)(colon - line); /* no check: colon may be NULL */
  if (n >= size) return -1;
  memcpy(out, line, n);
  out[n] = '\0';
  return 0;
}
