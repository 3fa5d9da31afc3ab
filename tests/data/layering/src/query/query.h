/* query.h: fixture */
