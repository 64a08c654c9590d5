package seccomp

// nativeArches: x86_64, and i386 beside it.
var nativeArches = []archTable{archX86_64, archI386}
