/* compile.h: fixture */
