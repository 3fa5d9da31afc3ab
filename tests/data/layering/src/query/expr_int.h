/* expr_int.h: fixture */
