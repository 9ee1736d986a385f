<?php
// Must run, never be served as source.
echo "secret ran\n";
