/* The native library of the seed example: built into libfoo.a by the
 * Makefile (distroless-pack runs it as `pre_build`) and linked into the .NET
 * binary as a NativeLibrary with DirectPInvoke "foo!add". */
__attribute__((__visibility__("default")))
int add(int x, int y)
{
    return x + y;
}
