// pp_pool.js: the Puppeteer side of the pool benchmark (peer_pool.js does the work).
//   node pp_pool.js --base URL [--tasks N] [--concurrency C] [--pages js|real] [--defaults]
'use strict';
require('./peer_pool').run('puppeteer', 'pp_pool.js');
