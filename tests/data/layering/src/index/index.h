/* index.h: fixture */
