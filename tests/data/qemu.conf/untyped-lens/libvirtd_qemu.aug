(* A qemu.conf lens that does not type values by key: every key takes a
   double-quoted string, a bare number or a list. The unit tests load it
   through AugeasSettings::lens_dir to reach values, such as a quoted
   boolean, that libvirt's own lens rejects while parsing. *)
module Libvirtd_qemu =
   let eol = del /[ \t]*\n/ "\n"
   let value_sep = del /[ \t]*=[ \t]*/ " = "
   let indent = del /[ \t]*/ ""

   let array_sep = del /,[ \t\n]*/ ", "
   let array_start = del /\[[ \t\n]*/ "[ "
   let array_end = del /\]/ "]"

   let str_val = del /\"/ "\"" . store /[^\"]*/ . del /\"/ "\""
   let int_val = store /[0-9]+/
   let str_array_element = [ seq "el" . str_val ] . del /[ \t\n]*/ ""
   let str_array_val = counter "el" . array_start
                     . ( str_array_element . ( array_sep . str_array_element ) * ) ?
                     . array_end

   let entry = [ key /[A-Za-z][A-Za-z0-9_]*/ . value_sep
               . ( str_val | int_val | str_array_val ) ]

   let comment = [ label "#comment" . del /#[ \t]*/ "# "
                 . store /([^ \t\n][^\n]*)?/ . del /\n/ "\n" ]
   let empty = [ label "#empty" . eol ]

   let record = indent . entry . eol

   let lns = ( record | comment | empty ) *
