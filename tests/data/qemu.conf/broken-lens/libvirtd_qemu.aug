(* A lens file with a syntax error, for the error path of lens loading. *)
module Libvirtd_qemu =
   let lns = del /x/ "x" .
