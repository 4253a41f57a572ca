; Generation sites: a function whose block opens with a docstring.
; What follows the docstring (nothing, a stub, a TODO comment, real code) is classified in
; sites.py, since "the rest of the block is only stubs" is not expressible as a query.
; Captures: @function (the function_definition), @name, @docstring (the string literal).
(function_definition
  name: (identifier) @name
  body: (block
    .
    (expression_statement
      .
      (string) @docstring
      .))) @function
