/* Calls add() from the static library libfoo.a, linked into one static binary. */
#include <stdio.h>

int add(int x, int y);

int main(void) {
    printf("add(2,3) = %d\n", add(2, 3));
    return 0;
}
