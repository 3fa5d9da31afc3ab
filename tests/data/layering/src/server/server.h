/* server.h: fixture */
