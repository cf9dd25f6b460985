/* The smallest example: a C program built with musl-gcc -static. */
#include <stdio.h>

int main(void) {
    puts("hello from distroless-pack");
    return 0;
}
