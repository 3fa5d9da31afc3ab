/* udf.h: fixture */
