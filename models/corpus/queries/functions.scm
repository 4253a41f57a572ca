; A function whose body opens with a string statement: its docstring.
; @func is the function_definition (its parent may be a decorated_definition),
; @doc the docstring literal.
(function_definition
  body: (block . (expression_statement (string) @doc))) @func
