# The last expression is a hash reference, not an app.
+{ app => 'nope' };
