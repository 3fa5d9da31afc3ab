/* base.h: fixture */
