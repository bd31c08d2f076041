// pp_schedule.js: the Puppeteer side of the daemon schedule benchmark (peer_schedule.js
// does the work).
//   node pp_schedule.js --targets FILE --output FILE --duration S [--concurrency 8]
'use strict';
require('./peer_schedule').run('puppeteer', 'pp_schedule.js');
