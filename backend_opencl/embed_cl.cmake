# Turns one .cl file into a header with `static const char awq_cl_<NAME>[]`.
file(READ ${IN} content HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," content "${content}")
file(WRITE ${OUT} "/* generated from ${IN} */\nstatic const char awq_cl_${NAME}[] = {${content}0x00};\n")
