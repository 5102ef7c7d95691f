<?php echo "sub index";
