/* lamina version. The single source of truth: CMakeLists.txt reads it. */
#ifndef LAMINA_VERSION_H_
#define LAMINA_VERSION_H_

#define LAMINA_VERSION_MAJOR 0
#define LAMINA_VERSION_MINOR 1
#define LAMINA_VERSION_PATCH 0
#define LAMINA_VERSION_STRING "0.1.0"

#endif /* LAMINA_VERSION_H_ */
