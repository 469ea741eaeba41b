/* A consumer of the installed lamina: C99, only the public header. */
#include <lamina/lamina.h>

#include <stdio.h>

int main(void) {
  const char* v = lamina_version_string();
  if (v == NULL || v[0] == '\0') {
    fprintf(stderr, "lamina_version_string() returned nothing\n");
    return 1;
  }
  printf("lamina version: %s\n", v);
  return 0;
}
