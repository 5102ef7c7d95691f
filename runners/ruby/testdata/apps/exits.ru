warn 'exiting from config.ru'
exit 2
