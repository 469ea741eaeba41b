/* A consumer of the installed lamina: C99, only the public header. */
#include <lamina/lamina.h>

#include <stdio.h>

int main(void) {
  const char* v = lamina_version_string();
  if (v == NULL || v[0] == '\0') {
    fprintf(stderr, "lamina_version_string() returned nothing\n");
    return 1;
  }
  /* A call into the engine, so that the link pulls in the whole runtime. */
  lamina_model* model = NULL;
  const lamina_status st = lamina_model_load("/nonexistent/consumer.lamina", NULL, &model);
  if (st != LAMINA_ERR_LOAD || model != NULL) {
    fprintf(stderr, "lamina_model_load of a missing file: %s, expected LAMINA_ERR_LOAD\n",
            lamina_status_string(st));
    return 1;
  }
  printf("lamina version: %s\n", v);
  return 0;
}
