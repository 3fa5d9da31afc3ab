/* internal.h: fixture */
