package seccomp

// nativeArches: aarch64, and arm beside it.
var nativeArches = []archTable{archAarch64, archARM}
