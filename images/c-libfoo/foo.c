/* The native library of the .NET NativeAOT seed example: exports add(). */
int add(int x, int y) {
    return x + y;
}
