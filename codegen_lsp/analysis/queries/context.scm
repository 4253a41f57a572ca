; Module-level context for prompts: what a function body may refer to.
; Captures: @docstring (the module's), @import, @assignment, @definition (functions and classes,
; decorated or not).
(module . (expression_statement . (string) .) @docstring)
(module (import_statement) @import)
(module (import_from_statement) @import)
(module (future_import_statement) @import)
(module (expression_statement (assignment)) @assignment)
(module (function_definition) @definition)
(module (class_definition) @definition)
(module (decorated_definition) @definition)
