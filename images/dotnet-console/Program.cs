// The seed article's console app: add() comes from libfoo.a (foo.c), linked
// into the NativeAOT binary through Direct P/Invoke. No libfoo.so exists at
// run time: the call is resolved by the linker, like a call in C.
//
// Two optional checks for the end-to-end script (scripts/e2e-dotnet.sh):
//   `culture` formats a number the German way: needs ICU (the static-icu and
//             icu-file modes); in the invariant mode it throws
//             CultureNotFoundException, as documented.
//   `sha256`  hashes "abc" with System.Security.Cryptography, which is
//             OpenSSL on Linux: needs StaticOpenSslLinking in a scratch image.
using System.Globalization;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

Console.WriteLine($"add(2,3) = {Add(2, 3)}");

foreach (var check in args)
{
    switch (check)
    {
        case "culture":
            Console.WriteLine(1234.5.ToString("N2", CultureInfo.GetCultureInfo("de-DE")));
            break;
        case "sha256":
            Console.WriteLine(Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes("abc"))).ToLowerInvariant());
            break;
        default:
            Console.Error.WriteLine($"unknown check {check}: expected culture or sha256");
            return 2;
    }
}
return 0;

// add() is trivial and never blocks, so no GC transition is needed.
[DllImport("foo", EntryPoint = "add"), SuppressGCTransition]
extern static int Add(int x, int y);
